-- The path argument of {function} (read_events, count_lines), refused when it names no file: DuckDB
-- reads an empty path as the current directory, recursively (a whole home
-- directory, for ever), so an empty or blank path, an empty list, or a list
-- with such an element is an error. `path` is VARCHAR or VARCHAR[]; both
-- branches must type-check for either, hence the casts (TRY_CAST gives NULL
-- where the branch is not taken).
CASE WHEN path IS NULL
       THEN error('{function}: path is NULL, pass a file, a glob such as ''data/2019-*.csv.gz'' or a list of files')
     WHEN CASE WHEN typeof(path) = 'VARCHAR' THEN trim(path::VARCHAR) = ''
               ELSE coalesce(len(try_cast(path AS VARCHAR[])) = 0
                             OR list_bool_or(list_transform(try_cast(path AS VARCHAR[]), lambda p: p IS NULL OR trim(p) = '')),
                             true) END
       THEN error('{function}: path ''' || path::VARCHAR || ''' names no file, pass a file, a glob such as ''data/2019-*.csv.gz'' or a list of files')
     ELSE path END
