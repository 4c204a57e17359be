-- Build runs with their provenance and how many slides each finished or failed.
select r.run_id, r.code_version, r.config_hash, r.model_hashes_json, r.started_at, r.finished_at,
       r.status,
       count(*) filter (where st.status = 'done') as n_done,
       count(*) filter (where st.status = 'failed') as n_failed
from runs r
left join slide_status st on st.run_id = r.run_id
group by all
order by r.started_at;
