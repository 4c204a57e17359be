-- Slides per patient and stain (one patient may have several H&E and IHC slides).
select patient_id, stain, count(*) as n_slides
from slides
group by patient_id, stain
order by patient_id, stain;
