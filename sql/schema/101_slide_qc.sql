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

-- A run whose driver was killed stays 'running'; the next build of the store (which holds the
-- store's writer lock, so no other build is alive) marks it 'interrupted' and counts the slides
-- it had finished. DuckDB cannot alter a check constraint: the table is rebuilt.
create table runs_v101 (
    run_id             varchar primary key,
    code_version       varchar,
    config_json        varchar,
    config_hash        varchar,
    model_hashes_json  varchar,
    started_at         timestamp,
    finished_at        timestamp,
    status             varchar not null default 'running'
        check (status in ('running', 'done', 'partial', 'failed', 'interrupted')),
    n_slides_finished  integer
);
insert into runs_v101 (run_id, code_version, config_json, config_hash, model_hashes_json,
                       started_at, finished_at, status)
select run_id, code_version, config_json, config_hash, model_hashes_json, started_at,
       finished_at, status
from runs;
drop table runs;
alter table runs_v101 rename to runs;
