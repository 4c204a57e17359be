-- Primary-resistance rate by tertile of TIL density (patients with a determined label only).
with til as (
    select patient_id, value
    from patient_features_long
    where feature = 'til_density_intraepithelial_per_mm2' and value is not null
),
labelled as (
    select t.patient_id, t.value, o.primary_resistance, ntile(3) over (order by t.value) as tertile
    from til t
    join outcomes o on o.patient_id = t.patient_id
    where o.primary_resistance is not null
)
select tertile, count(*) as n_patients, avg(primary_resistance) as resistance_rate,
       min(value) as til_min_per_mm2, max(value) as til_max_per_mm2
from labelled
group by tertile
order by tertile;
