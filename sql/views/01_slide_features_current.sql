-- grain: one row per slide, feature and feature version, taken from the slide's current run.
-- The current run of a slide is its most recent run with status 'done' in slide_status (latest
-- per-slide finished_at, then latest updated_at, then highest run_id). A slide that failed in a
-- later run keeps the features of its last successful run.
create or replace view slide_features_current as
with done as (
    select slide_id, run_id, finished_at, updated_at
    from slide_status
    where status = 'done' and slide_id is not null
),
current_run as (
    select slide_id, run_id
    from done
    qualify row_number() over (
        partition by slide_id
        order by finished_at desc nulls last, updated_at desc, run_id desc
    ) = 1
)
select f.slide_id, f.run_id, f.feature, f.feature_version, f.value
from slide_features f
join current_run c on c.slide_id = f.slide_id and c.run_id = f.run_id;
