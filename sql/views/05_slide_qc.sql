-- grain: one row per slide with a successful run: its current run's QC measures and flags.
-- "current" is the run slide_features_current uses (latest successful run of the slide).
-- flags: comma-separated flag names (empty when none); n_flags counts them; see
-- docs/architecture.md (QC and plausibility flags) for the measures and the rules.
create or replace view slide_qc as
with current_run as (
    select distinct slide_id, run_id from slide_features_current
),
measures as (
    select m.slide_id,
        max(value) filter (where measure = 'tissue_area_mm2') as tissue_area_mm2,
        max(value) filter (where measure = 'n_tiles') as n_tiles,
        max(value) filter (where measure = 'n_tiles_qc_pass') as n_tiles_qc_pass,
        max(value) filter (where measure = 'tiles_excluded_blur') as tiles_excluded_blur,
        max(value) filter (where measure = 'tiles_excluded_pen') as tiles_excluded_pen,
        max(value) filter (where measure = 'tiles_excluded_background') as tiles_excluded_background,
        max(value) filter (where measure = 'fraction_tiles_excluded') as fraction_tiles_excluded,
        max(value) filter (where measure = 'blur_median') as blur_median,
        max(value) filter (where measure = 'fraction_tiles_tumour') as fraction_tiles_tumour,
        max(value) filter (where measure = 'nuclei_per_mm2') as nuclei_per_mm2,
        max(value) filter (where measure = 'nuclei_lymphocyte_per_mm2') as nuclei_lymphocyte_per_mm2,
        max(value) filter (where measure = 'nuclei_epithelial_per_mm2') as nuclei_epithelial_per_mm2,
        max(value) filter (where measure = 'nuclei_fibroblast_per_mm2') as nuclei_fibroblast_per_mm2,
        max(value) filter (where measure = 'nuclei_other_per_mm2') as nuclei_other_per_mm2,
        max(value) filter (where measure = 'lymphocyte_fraction') as lymphocyte_fraction,
        max(value) filter (where measure = 'positive_cells_per_mm2') as positive_cells_per_mm2,
        max(value) filter (where measure = 'registration_overlap_dice') as registration_overlap_dice,
        max(value) filter (where measure = 'stain_h_od_r') as stain_h_od_r,
        max(value) filter (where measure = 'stain_h_od_g') as stain_h_od_g,
        max(value) filter (where measure = 'stain_h_od_b') as stain_h_od_b,
        max(value) filter (where measure = 'stain_e_od_r') as stain_e_od_r,
        max(value) filter (where measure = 'stain_e_od_g') as stain_e_od_g,
        max(value) filter (where measure = 'stain_e_od_b') as stain_e_od_b
    from slide_qc_measures m
    join current_run c on c.slide_id = m.slide_id and c.run_id = m.run_id
    group by m.slide_id
),
flags as (
    select f.slide_id, string_agg(f.flag, ',' order by f.flag) as flags, count(*) as n_flags
    from slide_flags f
    join current_run c on c.slide_id = f.slide_id and c.run_id = f.run_id
    group by f.slide_id
)
select
    s.slide_id,
    c.run_id,
    s.patient_id,
    s.stain,
    s.mpp_x as mpp,
    s.mpp_source,
    m.* exclude (slide_id),
    coalesce(f.flags, '') as flags,
    coalesce(f.n_flags, 0) as n_flags
from current_run c
join slides s on s.slide_id = c.slide_id
left join measures m on m.slide_id = c.slide_id
left join flags f on f.slide_id = c.slide_id;
