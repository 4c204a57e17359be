-- grain: one row per slide; one column per feature of feature_catalog (values of the current run).
-- DuckDB cannot pivot on a dynamic list inside a view, so immunodig regenerates this view from
-- feature_catalog whenever the catalogue is synced (and on every read-write open): the marker
-- below is replaced by one `max(value) filter (where feature = '<name>') as "<name>"` per
-- catalogued feature name. Features missing from the catalogue are only in slide_features_current.
create or replace view slide_features_wide as
select
    s.slide_id,
    s.patient_id,
    s.stain,
    max(f.run_id) as run_id
    /* feature_columns */
from slides s
left join slide_features_current f on f.slide_id = s.slide_id
group by s.slide_id, s.patient_id, s.stain;
