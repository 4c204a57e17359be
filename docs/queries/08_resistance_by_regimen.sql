-- Primary resistance by immune-checkpoint regimen; undetermined labels (early censoring) are
-- counted apart, never as non-resistant.
select
    t.ici_regimen,
    count(*) as n_patients,
    count(*) filter (where o.primary_resistance = 1) as n_resistant,
    count(*) filter (where o.primary_resistance = 0) as n_not_resistant,
    count(*) filter (where o.primary_resistance is null) as n_undetermined
from treatments t
join outcomes o on o.patient_id = t.patient_id
group by t.ici_regimen
order by t.ici_regimen;
