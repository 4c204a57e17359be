-- grain: one row per slide and encoder: the tile embeddings of the slide's current run (the run
-- slide_features_current uses), with the slide's patient and stain. A patient's MIL bag is the
-- union of its H&E slides' rows for one encoder_sha256 (immunodig.mil.bags).
create or replace view slide_embeddings_current as
with current_run as (
    select distinct slide_id, run_id from slide_features_current
)
select s.patient_id, s.stain, e.slide_id, e.run_id, e.encoder, e.encoder_sha256, e.dim, e.n_tiles,
       e.file, e.sha256
from slide_embeddings e
join current_run c on c.slide_id = e.slide_id and c.run_id = e.run_id
join slides s on s.slide_id = e.slide_id;
