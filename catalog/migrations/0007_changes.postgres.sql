-- Change counters: what a replica compares to learn that the catalog
-- changed behind its back (another replica, the CLI). Row `clock` is the
-- catalog's change counter; every other row holds the clock's value at its
-- topic's last change. A changing transaction bumps the clock, which locks
-- its row until commit: transactions that change the catalog commit in
-- counter order, so a reader that has seen counter N has seen every change
-- up to N. Only what replicas hold in memory has a topic; the push outbox,
-- sync runs and subscription cursors change without one.
CREATE TABLE catalog_changes (
    topic   TEXT PRIMARY KEY,
    counter BIGINT NOT NULL
);
INSERT INTO catalog_changes (topic, counter) VALUES
    ('clock', 0),
    ('directory', 0),
    ('versions', 0),
    ('identities', 0),
    ('lists', 0),
    ('services', 0),
    ('subscriptions', 0);

-- PostgreSQL: one statement-level trigger per table; pg_notify tells the
-- replicas listening on `tongban_catalog` at commit (a listener that was
-- disconnected catches up by reading the counters).
CREATE FUNCTION tongban_catalog_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n BIGINT;
BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock' RETURNING counter INTO n;
    UPDATE catalog_changes SET counter = n WHERE topic = TG_ARGV[0];
    PERFORM pg_notify('tongban_catalog', TG_ARGV[0]);
    RETURN NULL;
END
$$;
CREATE TRIGGER departments_changed AFTER INSERT OR DELETE OR UPDATE ON departments
    FOR EACH STATEMENT EXECUTE FUNCTION tongban_catalog_changed('directory');
CREATE TRIGGER resources_changed AFTER INSERT OR DELETE OR UPDATE ON resources
    FOR EACH STATEMENT EXECUTE FUNCTION tongban_catalog_changed('directory');
CREATE TRIGGER data_items_changed AFTER INSERT OR DELETE OR UPDATE ON data_items
    FOR EACH STATEMENT EXECUTE FUNCTION tongban_catalog_changed('directory');
CREATE TRIGGER dataset_versions_changed AFTER INSERT OR DELETE OR UPDATE ON dataset_versions
    FOR EACH STATEMENT EXECUTE FUNCTION tongban_catalog_changed('versions');
CREATE TRIGGER tokens_changed AFTER INSERT OR DELETE OR UPDATE ON tokens
    FOR EACH STATEMENT EXECUTE FUNCTION tongban_catalog_changed('identities');
CREATE TRIGGER needs_changed AFTER INSERT OR DELETE OR UPDATE ON needs
    FOR EACH STATEMENT EXECUTE FUNCTION tongban_catalog_changed('lists');
CREATE TRIGGER negative_entries_changed AFTER INSERT OR DELETE OR UPDATE ON negative_entries
    FOR EACH STATEMENT EXECUTE FUNCTION tongban_catalog_changed('lists');
CREATE TRIGGER responsibilities_changed AFTER INSERT OR DELETE OR UPDATE ON responsibilities
    FOR EACH STATEMENT EXECUTE FUNCTION tongban_catalog_changed('lists');
CREATE TRIGGER calendar_days_changed AFTER INSERT OR DELETE OR UPDATE ON calendar_days
    FOR EACH STATEMENT EXECUTE FUNCTION tongban_catalog_changed('lists');
CREATE TRIGGER services_changed AFTER INSERT OR DELETE OR UPDATE ON services
    FOR EACH STATEMENT EXECUTE FUNCTION tongban_catalog_changed('services');
CREATE TRIGGER subscriptions_changed AFTER INSERT OR DELETE OR UPDATE OF status ON subscriptions
    FOR EACH STATEMENT EXECUTE FUNCTION tongban_catalog_changed('subscriptions');
