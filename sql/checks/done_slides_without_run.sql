-- grain: one row per successful slide status whose run has no provenance row in runs.
select st.slide_id, st.run_id
from slide_status st
left join runs r on r.run_id = st.run_id
where st.status = 'done' and r.run_id is null;
