-- Tile embeddings of H&E slides (build-features --embeddings, immunodig.embeddings): one row per
-- slide folder's embeddings.npy, loaded with the slide's features. Embeddings of different
-- encoders are never mixed: a bag is read for one encoder_sha256.

-- grain: one row per slide, run and encoder
create table slide_embeddings (
    slide_id        varchar not null,
    run_id          varchar not null,
    encoder         varchar not null,
    encoder_sha256  varchar not null,
    dim             integer not null,
    n_tiles         integer not null,
    file            varchar not null,
    sha256          varchar not null,
    primary key (slide_id, run_id, encoder_sha256)
);
