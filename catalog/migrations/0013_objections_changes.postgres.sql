-- Objections count as the lists' change-feed topic: replicas reload their
-- disputed marks with the lists (one trigger form per backend).
CREATE TRIGGER objections_changed AFTER INSERT OR DELETE OR UPDATE ON objections
    FOR EACH STATEMENT EXECUTE FUNCTION tongban_catalog_changed('lists');
