-- grain: one row per feature name stored for slides but absent from feature_catalog
-- (such features are missing from the wide views and aggregated with a plain mean).
select f.feature, count(distinct f.slide_id) as n_slides
from slide_features_current f
left join feature_catalog c on c.name = f.feature
where c.name is null
group by f.feature;
