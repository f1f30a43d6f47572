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

-- SQLite: row-level triggers, one per event (SQLite has no statement-level
-- ones); the one process that holds the file polls the counters.
CREATE TRIGGER departments_insert_changed AFTER INSERT ON departments BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock';
    UPDATE catalog_changes SET counter = (SELECT counter FROM catalog_changes WHERE topic = 'clock')
        WHERE topic = 'directory';
END;
CREATE TRIGGER departments_delete_changed AFTER DELETE ON departments BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock';
    UPDATE catalog_changes SET counter = (SELECT counter FROM catalog_changes WHERE topic = 'clock')
        WHERE topic = 'directory';
END;
CREATE TRIGGER departments_update_changed AFTER UPDATE ON departments BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock';
    UPDATE catalog_changes SET counter = (SELECT counter FROM catalog_changes WHERE topic = 'clock')
        WHERE topic = 'directory';
END;
CREATE TRIGGER resources_insert_changed AFTER INSERT ON resources BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock';
    UPDATE catalog_changes SET counter = (SELECT counter FROM catalog_changes WHERE topic = 'clock')
        WHERE topic = 'directory';
END;
CREATE TRIGGER resources_delete_changed AFTER DELETE ON resources BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock';
    UPDATE catalog_changes SET counter = (SELECT counter FROM catalog_changes WHERE topic = 'clock')
        WHERE topic = 'directory';
END;
CREATE TRIGGER resources_update_changed AFTER UPDATE ON resources BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock';
    UPDATE catalog_changes SET counter = (SELECT counter FROM catalog_changes WHERE topic = 'clock')
        WHERE topic = 'directory';
END;
CREATE TRIGGER data_items_insert_changed AFTER INSERT ON data_items BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock';
    UPDATE catalog_changes SET counter = (SELECT counter FROM catalog_changes WHERE topic = 'clock')
        WHERE topic = 'directory';
END;
CREATE TRIGGER data_items_delete_changed AFTER DELETE ON data_items BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock';
    UPDATE catalog_changes SET counter = (SELECT counter FROM catalog_changes WHERE topic = 'clock')
        WHERE topic = 'directory';
END;
CREATE TRIGGER data_items_update_changed AFTER UPDATE ON data_items BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock';
    UPDATE catalog_changes SET counter = (SELECT counter FROM catalog_changes WHERE topic = 'clock')
        WHERE topic = 'directory';
END;
CREATE TRIGGER dataset_versions_insert_changed AFTER INSERT ON dataset_versions BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock';
    UPDATE catalog_changes SET counter = (SELECT counter FROM catalog_changes WHERE topic = 'clock')
        WHERE topic = 'versions';
END;
CREATE TRIGGER dataset_versions_delete_changed AFTER DELETE ON dataset_versions BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock';
    UPDATE catalog_changes SET counter = (SELECT counter FROM catalog_changes WHERE topic = 'clock')
        WHERE topic = 'versions';
END;
CREATE TRIGGER dataset_versions_update_changed AFTER UPDATE ON dataset_versions BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock';
    UPDATE catalog_changes SET counter = (SELECT counter FROM catalog_changes WHERE topic = 'clock')
        WHERE topic = 'versions';
END;
CREATE TRIGGER tokens_insert_changed AFTER INSERT ON tokens BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock';
    UPDATE catalog_changes SET counter = (SELECT counter FROM catalog_changes WHERE topic = 'clock')
        WHERE topic = 'identities';
END;
CREATE TRIGGER tokens_delete_changed AFTER DELETE ON tokens BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock';
    UPDATE catalog_changes SET counter = (SELECT counter FROM catalog_changes WHERE topic = 'clock')
        WHERE topic = 'identities';
END;
CREATE TRIGGER tokens_update_changed AFTER UPDATE ON tokens BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock';
    UPDATE catalog_changes SET counter = (SELECT counter FROM catalog_changes WHERE topic = 'clock')
        WHERE topic = 'identities';
END;
CREATE TRIGGER needs_insert_changed AFTER INSERT ON needs BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock';
    UPDATE catalog_changes SET counter = (SELECT counter FROM catalog_changes WHERE topic = 'clock')
        WHERE topic = 'lists';
END;
CREATE TRIGGER needs_delete_changed AFTER DELETE ON needs BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock';
    UPDATE catalog_changes SET counter = (SELECT counter FROM catalog_changes WHERE topic = 'clock')
        WHERE topic = 'lists';
END;
CREATE TRIGGER needs_update_changed AFTER UPDATE ON needs BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock';
    UPDATE catalog_changes SET counter = (SELECT counter FROM catalog_changes WHERE topic = 'clock')
        WHERE topic = 'lists';
END;
CREATE TRIGGER negative_entries_insert_changed AFTER INSERT ON negative_entries BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock';
    UPDATE catalog_changes SET counter = (SELECT counter FROM catalog_changes WHERE topic = 'clock')
        WHERE topic = 'lists';
END;
CREATE TRIGGER negative_entries_delete_changed AFTER DELETE ON negative_entries BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock';
    UPDATE catalog_changes SET counter = (SELECT counter FROM catalog_changes WHERE topic = 'clock')
        WHERE topic = 'lists';
END;
CREATE TRIGGER negative_entries_update_changed AFTER UPDATE ON negative_entries BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock';
    UPDATE catalog_changes SET counter = (SELECT counter FROM catalog_changes WHERE topic = 'clock')
        WHERE topic = 'lists';
END;
CREATE TRIGGER responsibilities_insert_changed AFTER INSERT ON responsibilities BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock';
    UPDATE catalog_changes SET counter = (SELECT counter FROM catalog_changes WHERE topic = 'clock')
        WHERE topic = 'lists';
END;
CREATE TRIGGER responsibilities_delete_changed AFTER DELETE ON responsibilities BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock';
    UPDATE catalog_changes SET counter = (SELECT counter FROM catalog_changes WHERE topic = 'clock')
        WHERE topic = 'lists';
END;
CREATE TRIGGER responsibilities_update_changed AFTER UPDATE ON responsibilities BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock';
    UPDATE catalog_changes SET counter = (SELECT counter FROM catalog_changes WHERE topic = 'clock')
        WHERE topic = 'lists';
END;
CREATE TRIGGER calendar_days_insert_changed AFTER INSERT ON calendar_days BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock';
    UPDATE catalog_changes SET counter = (SELECT counter FROM catalog_changes WHERE topic = 'clock')
        WHERE topic = 'lists';
END;
CREATE TRIGGER calendar_days_delete_changed AFTER DELETE ON calendar_days BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock';
    UPDATE catalog_changes SET counter = (SELECT counter FROM catalog_changes WHERE topic = 'clock')
        WHERE topic = 'lists';
END;
CREATE TRIGGER calendar_days_update_changed AFTER UPDATE ON calendar_days BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock';
    UPDATE catalog_changes SET counter = (SELECT counter FROM catalog_changes WHERE topic = 'clock')
        WHERE topic = 'lists';
END;
CREATE TRIGGER services_insert_changed AFTER INSERT ON services BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock';
    UPDATE catalog_changes SET counter = (SELECT counter FROM catalog_changes WHERE topic = 'clock')
        WHERE topic = 'services';
END;
CREATE TRIGGER services_delete_changed AFTER DELETE ON services BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock';
    UPDATE catalog_changes SET counter = (SELECT counter FROM catalog_changes WHERE topic = 'clock')
        WHERE topic = 'services';
END;
CREATE TRIGGER services_update_changed AFTER UPDATE ON services BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock';
    UPDATE catalog_changes SET counter = (SELECT counter FROM catalog_changes WHERE topic = 'clock')
        WHERE topic = 'services';
END;
CREATE TRIGGER subscriptions_insert_changed AFTER INSERT ON subscriptions BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock';
    UPDATE catalog_changes SET counter = (SELECT counter FROM catalog_changes WHERE topic = 'clock')
        WHERE topic = 'subscriptions';
END;
CREATE TRIGGER subscriptions_delete_changed AFTER DELETE ON subscriptions BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock';
    UPDATE catalog_changes SET counter = (SELECT counter FROM catalog_changes WHERE topic = 'clock')
        WHERE topic = 'subscriptions';
END;
CREATE TRIGGER subscriptions_update_changed AFTER UPDATE OF status ON subscriptions BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock';
    UPDATE catalog_changes SET counter = (SELECT counter FROM catalog_changes WHERE topic = 'clock')
        WHERE topic = 'subscriptions';
END;
