-- Multiplex CD8 density in the tumour compartment against the H&E-derived TIL density.
select m.patient_id, m.density_per_mm2 as cd8_tumour_per_mm2,
       p.value as he_til_density_intraepithelial_per_mm2, p.n_slides
from multiplex m
join patient_features_long p on p.patient_id = m.patient_id
where m.marker = 'CD8' and m.compartment = 'tumour' and p.feature = 'til_density_intraepithelial_per_mm2'
order by m.patient_id;
