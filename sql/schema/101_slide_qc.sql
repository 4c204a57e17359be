-- Per-slide quality control (immunodig.pipeline.slide_qc): measures and plausibility flags,
-- loaded from each slide folder's qc.json together with its features.

-- grain: one row per slide, run and QC measure (value null = undefined)
create table slide_qc_measures (
    slide_id  varchar not null,
    run_id    varchar not null,
    measure   varchar not null,
    value     double,
    primary key (slide_id, run_id, measure)
);

-- grain: one row per slide, run and raised plausibility flag
create table slide_flags (
    slide_id  varchar not null,
    run_id    varchar not null,
    flag      varchar not null,
    reason    varchar not null,
    primary key (slide_id, run_id, flag)
);
