-- Patient-level intraepithelial (intratumoural) lymphocyte density, area-weighted over H&E slides, with the
-- number of slides that contributed.
select patient_id, value as til_density_intraepithelial_per_mm2, n_slides
from patient_features_long
where feature = 'til_density_intraepithelial_per_mm2'
order by value desc nulls last;
