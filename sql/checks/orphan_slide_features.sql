-- grain: one row per (slide, run) with feature rows but no slide row or no successful status.
-- A check returns the offending rows; an empty result means the store is consistent.
select f.slide_id, f.run_id, count(*) as n_features
from slide_features f
left join slides s on s.slide_id = f.slide_id
left join slide_status st on st.slide_key = f.slide_id and st.run_id = f.run_id and st.status = 'done'
where s.slide_id is null or st.slide_key is null
group by f.slide_id, f.run_id;
