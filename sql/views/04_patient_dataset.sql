-- grain: one row per patient (every row of `patients`): baseline clinical data, treatment,
-- outcomes with primary_resistance, the number of H&E slides with features, and one column per
-- catalogued feature aggregated over the patient's slides (see patient_features_long).
-- Regenerated with slide_features_wide: the marker below becomes one
-- `max(value) filter (where feature = '<name>') as "<name>"` per catalogued feature name.
create or replace view patient_dataset as
with features as (
    select
        patient_id
        /* feature_columns */
    from patient_features_long
    group by patient_id
),
he_slides as (
    select s.patient_id, count(distinct f.slide_id) as n_he_slides
    from slide_features_current f
    join slides s on s.slide_id = f.slide_id
    where s.stain = 'HE'
    group by s.patient_id
)
select
    p.patient_id,
    c.age_years,
    c.sex,
    c.primary_side,
    c.ras_status,
    c.braf_status,
    c.lynch,
    c.ecog,
    t.ici_regimen,
    t.treatment_line,
    o.best_response,
    o.pfs_months,
    o.pfs_event,
    o.os_months,
    o.os_event,
    o.primary_resistance,
    coalesce(h.n_he_slides, 0) as n_he_slides,
    f.* exclude (patient_id)
from patients p
left join clinical c on c.patient_id = p.patient_id
left join treatments t on t.patient_id = p.patient_id
left join outcomes o on o.patient_id = p.patient_id
left join he_slides h on h.patient_id = p.patient_id
left join features f on f.patient_id = p.patient_id;
