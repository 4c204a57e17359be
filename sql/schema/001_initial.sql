-- migration 001: initial schema of the immunodig store.
-- grain of each table is given above it. No foreign keys: DuckDB forbids updating a parent row
-- that children reference, which an upsert of `slides` or `runs` needs; the queries under
-- sql/checks/ find orphans instead.

-- grain: one row per applied migration
create table if not exists schema_version (
    version     integer primary key,
    name        varchar not null,
    sha256      varchar not null,
    applied_at  timestamp not null default current_timestamp
);

-- grain: one row per build run (run_id = provenance.run_key of code version, config, model hashes)
create table runs (
    run_id             varchar primary key,
    code_version       varchar,
    config_json        varchar,
    config_hash        varchar,
    model_hashes_json  varchar,
    started_at         timestamp,
    finished_at        timestamp,
    status             varchar not null default 'running'
        check (status in ('running', 'done', 'partial', 'failed'))
);

-- grain: one row per slide (slide_id = 's_' + 16 hex of a content fingerprint, never the file name)
create table slides (
    slide_id         varchar primary key,
    patient_id       varchar,
    stain            varchar,
    path             varchar,
    mpp_x            double check (mpp_x > 0),
    mpp_y            double check (mpp_y > 0),
    mpp_source       varchar check (mpp_source in ('metadata', 'override')),
    width_px         bigint,
    height_px        bigint,
    level_count      integer,
    vendor           varchar,
    checksum_sha256  varchar,
    properties_json  varchar,
    ingested_at      timestamp not null default current_timestamp
);

-- grain: one row per slide (or failed path) and run
-- slide_key is slide_id when known, otherwise the path of a slide that failed before it could be
-- fingerprinted (path is only filled for such failures).
create table slide_status (
    slide_key        varchar not null,
    slide_id         varchar,
    path             varchar,
    run_id           varchar not null,
    status           varchar not null check (status in ('done', 'failed')),
    reason           varchar,
    message          varchar,
    started_at       timestamp,
    finished_at      timestamp,
    manifest_sha256  varchar,
    updated_at       timestamp not null default current_timestamp,
    primary key (slide_key, run_id)
);

-- grain: one row per slide, run, feature and feature version (value null = undefined)
create table slide_features (
    slide_id         varchar not null,
    run_id           varchar not null,
    feature          varchar not null,
    feature_version  integer not null,
    value            double,
    primary key (slide_id, run_id, feature, feature_version)
);

-- grain: one row per feature name and definition version
create table feature_catalog (
    name                 varchar not null,
    version              integer not null,
    unit                 varchar,
    description          varchar,
    stage                varchar,
    inputs               varchar,
    patient_aggregation  varchar not null default 'mean'
        check (patient_aggregation in ('area_weighted_mean', 'sum', 'max', 'mean')),
    weight               varchar,
    reference            varchar,
    synced_at            timestamp not null default current_timestamp,
    primary key (name, version)
);

-- grain: one row per pseudonymised patient
create table patients (
    patient_id  varchar primary key,
    created_at  timestamp not null default current_timestamp
);

-- grain: one row per imported file version (kind, content hash and import options)
create table imports (
    import_id     varchar primary key,
    kind          varchar not null check (kind in ('clinical', 'genomic', 'multiplex')),
    file_name     varchar not null,
    sha256        varchar not null,
    rows          integer not null,
    options_json  varchar,
    imported_at   timestamp not null default current_timestamp
);

-- grain: one row per patient (baseline characteristics)
create table clinical (
    patient_id    varchar primary key,
    age_years     double check (age_years between 18 and 100),
    sex           varchar check (sex in ('F', 'M')),
    primary_side  varchar check (primary_side in ('left', 'right', 'rectum')),
    ras_status    varchar check (ras_status in ('wt', 'mut')),
    braf_status   varchar check (braf_status in ('wt', 'mut')),
    lynch         smallint check (lynch in (0, 1)),
    ecog          smallint check (ecog between 0 and 4),
    import_id     varchar
);

-- grain: one row per patient (the immune-checkpoint treatment of the study)
create table treatments (
    patient_id      varchar primary key,
    ici_regimen     varchar check (ici_regimen in ('anti-PD-1', 'anti-PD-1+anti-CTLA-4', 'other')),
    treatment_line  smallint check (treatment_line >= 1),
    import_id       varchar
);

-- grain: one row per patient (response, survival and derived primary resistance)
create table outcomes (
    patient_id          varchar primary key,
    best_response       varchar check (best_response in ('CR', 'PR', 'SD', 'PD', 'NE')),
    pfs_months          double check (pfs_months >= 0),
    pfs_event           smallint check (pfs_event in (0, 1)),
    os_months           double check (os_months >= 0),
    os_event            smallint check (os_event in (0, 1)),
    primary_resistance  smallint check (primary_resistance in (0, 1)),
    resistance_rule     varchar,
    import_id           varchar
);

-- grain: one row per patient and genomic feature (binary calls stored as 0/1)
create table genomic (
    patient_id  varchar not null,
    feature     varchar not null,
    value       double not null,
    import_id   varchar,
    primary key (patient_id, feature)
);

-- grain: one row per patient, marker and compartment (multiplex / IHC cell densities)
create table multiplex (
    patient_id       varchar not null,
    marker           varchar not null,
    compartment      varchar not null,
    density_per_mm2  double not null check (density_per_mm2 >= 0),
    import_id        varchar,
    primary key (patient_id, marker, compartment)
);
