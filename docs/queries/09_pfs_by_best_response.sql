-- Progression-free survival by best response (descriptive; use Kaplan-Meier for inference).
select best_response, count(*) as n_patients, median(pfs_months) as median_pfs_months_observed,
       sum(pfs_event) as n_pfs_events
from outcomes
group by best_response
order by best_response;
