-- grain: one row per patient and feature, aggregated over the patient's slides.
-- Slides used: the H&E slides (stain = 'HE') for every feature, except features of catalogue
-- stage 'ihc' (e.g. cd8_density_*), which come from the patient's IHC slides (stain <> 'HE').
-- Each feature combines its slides' current values by its catalogue patient_aggregation (latest
-- catalogue version of the name; 'mean' for a feature missing from the catalogue):
--   area_weighted_mean: sum(value * w) / sum(w), w = the same slide's value of the feature named
--                       in `weight` (e.g. area_tissue_mm2); slides without a positive weight or
--                       with an undefined value are left out; null if none remains
--   sum, max, mean:     over the slides where the value is defined (not null)
-- n_slides counts the slides that contributed to the value.
create or replace view patient_features_long as
with catalog as (
    select name, stage, patient_aggregation, weight
    from feature_catalog
    qualify row_number() over (partition by name order by version desc) = 1
),
slide_values as (
    select s.patient_id, s.stain, f.slide_id, f.feature, f.value
    from slide_features_current f
    join slides s on s.slide_id = f.slide_id
    where s.patient_id is not null
),
eligible as (
    select
        v.patient_id,
        v.slide_id,
        v.feature,
        v.value,
        coalesce(c.patient_aggregation, 'mean') as aggregation,
        c.weight
    from slide_values v
    left join catalog c on c.name = v.feature
    where case when c.stage = 'ihc' then v.stain <> 'HE' else v.stain = 'HE' end
),
weighted as (
    select e.patient_id, e.feature, e.value, e.aggregation, w.value as weight_value
    from eligible e
    left join slide_values w on w.slide_id = e.slide_id and w.feature = e.weight
)
select
    patient_id,
    feature,
    case aggregation
        when 'area_weighted_mean' then
            sum(value * weight_value) filter (where value is not null and weight_value > 0)
            / sum(weight_value) filter (where value is not null and weight_value > 0)
        when 'sum' then sum(value)
        when 'max' then max(value)
        else avg(value)
    end as value,
    case aggregation
        when 'area_weighted_mean' then
            count(*) filter (where value is not null and weight_value > 0)
        else count(value)
    end as n_slides
from weighted
group by patient_id, feature, aggregation;
