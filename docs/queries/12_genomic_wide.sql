-- Genomic features beside the outcome: TMB and KRAS status per patient (pivot of the long table).
select
    o.patient_id,
    max(g.value) filter (where g.feature = 'tmb') as tmb,
    max(g.value) filter (where g.feature = 'kras_mutated') as kras_mutated,
    o.primary_resistance
from outcomes o
join genomic g on g.patient_id = o.patient_id
group by o.patient_id, o.primary_resistance
order by o.patient_id;
