-- One feature across every run that computed it, per slide: shows what a new model or config
-- changed (the current view only keeps the latest successful run).
select f.slide_id, f.run_id, r.finished_at, f.feature_version, f.value
from slide_features f
join runs r on r.run_id = f.run_id
where f.feature = 'prop_tumour'
order by f.slide_id, r.finished_at;
