-- Interface sharing (接口共享): a provider API registered for a resource whose
-- items are the API's parameters and response fields.

CREATE TABLE services (
    resource_code TEXT PRIMARY KEY REFERENCES resources (code),
    definition    TEXT NOT NULL, -- JSON ServiceSpec (endpoints, limits, breaker, …)
    version       BIGINT NOT NULL,
    updated_at    TEXT NOT NULL
);
