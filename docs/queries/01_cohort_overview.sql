-- Cohort at a glance: patients, patients with clinical data, slides by stain, and how many
-- patients have a determined primary-resistance label.
select
    (select count(*) from patients) as n_patients,
    (select count(*) from clinical) as n_with_clinical,
    (select count(*) from slides where stain = 'HE') as n_he_slides,
    (select count(*) from slides where stain <> 'HE') as n_ihc_slides,
    (select count(*) from outcomes where primary_resistance is not null) as n_resistance_determined;
