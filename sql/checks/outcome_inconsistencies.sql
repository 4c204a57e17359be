-- grain: one row per patient whose outcomes contradict each other (the import refuses these;
-- the check guards rows written by other means).
select patient_id,
       case
           when pfs_months > os_months then 'pfs_months exceeds os_months'
           when os_event = 1 and pfs_event = 0 then 'death without a PFS event'
           when best_response = 'PD' and pfs_event = 0 then 'PD without a PFS event'
           else 'primary_resistance without its rule'
       end as problem
from outcomes
where pfs_months > os_months
   or (os_event = 1 and pfs_event = 0)
   or (best_response = 'PD' and pfs_event = 0)
   or (primary_resistance is not null and resistance_rule is null);
