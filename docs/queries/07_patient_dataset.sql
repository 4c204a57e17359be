-- The modelling table: one row per patient with clinical data, outcomes and one column per
-- catalogued feature (patients without slides or clinical data appear with nulls).
select *
from patient_dataset
order by patient_id;
