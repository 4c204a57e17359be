-- The feature catalogue: unit, stage and how each feature combines over a patient's slides.
select name, version, unit, stage, patient_aggregation, weight
from feature_catalog
order by stage, name;
