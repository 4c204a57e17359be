-- Slides that failed, with the machine-readable reason and the message (slide_key is the
-- slide_id, or the path when the slide failed before it could be fingerprinted).
select slide_key, run_id, reason, message, updated_at
from slide_status
where status = 'failed'
order by updated_at desc;
