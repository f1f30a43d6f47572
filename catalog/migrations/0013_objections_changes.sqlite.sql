-- Objections count as the lists' change-feed topic: replicas reload their
-- disputed marks with the lists (one trigger form per backend).
CREATE TRIGGER objections_insert_changed AFTER INSERT ON objections BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock';
    UPDATE catalog_changes SET counter = (SELECT counter FROM catalog_changes WHERE topic = 'clock')
        WHERE topic = 'lists';
END;
CREATE TRIGGER objections_delete_changed AFTER DELETE ON objections BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock';
    UPDATE catalog_changes SET counter = (SELECT counter FROM catalog_changes WHERE topic = 'clock')
        WHERE topic = 'lists';
END;
CREATE TRIGGER objections_update_changed AFTER UPDATE ON objections BEGIN
    UPDATE catalog_changes SET counter = counter + 1 WHERE topic = 'clock';
    UPDATE catalog_changes SET counter = (SELECT counter FROM catalog_changes WHERE topic = 'clock')
        WHERE topic = 'lists';
END;
