-- Current slide features of one patient, long form; the patient is a bound parameter ($patient_id),
-- e.g. python cli.py query "$(cat docs/queries/04_features_of_one_patient.sql)" --store S --param patient_id=P_0001
-- params: {"patient_id": "P_0001"}
select s.slide_id, s.stain, f.feature, f.value, f.run_id
from slide_features_current f
join slides s on s.slide_id = f.slide_id
where s.patient_id = $patient_id
order by s.slide_id, f.feature;
