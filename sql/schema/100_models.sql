-- migration 100: results of model evaluation and fitting (written by immunodig.evaluation.results).
-- Every number here is internal validation (nested cross-validation in this cohort) unless
-- model_runs.validation says otherwise.

-- grain: one row per model run (evaluate or fit). model_run_id = 'm_' + 16 hex of the SHA-256 of
-- code version, kind, model, outcome, feature set, settings and the content hash of the model
-- matrix: the same inputs give the same id (a rerun replaces its own rows, never another run's).
create table model_runs (
    model_run_id               varchar primary key,
    kind                       varchar not null check (kind in ('evaluate', 'fit')),
    model                      varchar not null,
    task                       varchar not null check (task in ('classification', 'survival')),
    outcome                    varchar not null,
    feature_set                varchar not null,
    features_json              varchar not null,
    settings_json              varchar not null,
    splits_key                 varchar,
    n_patients                 integer not null,
    n_events                   integer not null,
    n_dropped_missing_outcome  integer not null default 0,
    data_sha256                varchar not null,
    code_version               varchar not null,
    validation                 varchar not null,
    summary_json               varchar,
    model_file                 varchar,
    model_sha256               varchar,
    created_at                 timestamp not null default current_timestamp
);

-- grain: one row per model run, patient and CV repeat (out-of-fold prediction; for
-- classification the predicted probability, for survival the risk score, higher = earlier event)
create table oof_predictions (
    model_run_id  varchar not null,
    patient_id    varchar not null,
    "repeat"      integer not null,
    fold          integer not null,
    prediction    double not null,
    train_cut     double not null,
    primary key (model_run_id, patient_id, "repeat")
);

-- grain: one row per model run and metric (ci_low/ci_high: patient-bootstrap 95 % interval)
create table model_metrics (
    model_run_id  varchar not null,
    metric        varchar not null,
    value         double,
    ci_low        double,
    ci_high       double,
    primary key (model_run_id, metric)
);
