-- grain: one row per H&E slide with current features whose patient has no clinical or outcome row.
with slides_with_features as (
    select distinct slide_id from slide_features_current
)
select s.slide_id, s.patient_id
from slides s
join slides_with_features f on f.slide_id = s.slide_id
left join clinical c on c.patient_id = s.patient_id
left join outcomes o on o.patient_id = s.patient_id
where s.stain = 'HE' and (c.patient_id is null or o.patient_id is null);
