-- Per-tile attention of MIL model runs (evaluate --model abmil|transmil|meanpool|maxpool): the
-- weight each tile got from the out-of-fold model of the first CV repeat (the model that never
-- saw the patient). Weights of one patient's bag sum to 1 over all its slides' tiles.

-- grain: one row per model run, slide and tile
create table mil_attention (
    model_run_id  varchar not null,
    patient_id    varchar not null,
    slide_id      varchar not null,
    col           integer not null,
    row           integer not null,
    x_um          double not null,
    y_um          double not null,
    tile_um       double not null,
    tissue_class  varchar,
    attention     double not null,
    primary key (model_run_id, slide_id, col, row)
);
