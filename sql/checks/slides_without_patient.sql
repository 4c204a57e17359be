-- grain: one row per slide whose patient is unknown (no patient_id, or not in patients).
select s.slide_id, s.stain
from slides s
left join patients p on p.patient_id = s.patient_id
where p.patient_id is null;
