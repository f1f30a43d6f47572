-- The data-use record (数据使用记录): a need names its matter as citizens
-- read it, and may be covert (a legal exception) until a date, before which
-- uses under it are withheld from the subjects' records.
ALTER TABLE needs ADD COLUMN matter_name TEXT;
ALTER TABLE needs ADD COLUMN covert_until TEXT;
