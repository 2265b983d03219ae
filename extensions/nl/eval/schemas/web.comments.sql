-- Descriptions of the web analytics schema, in the words users search with.
-- Loaded after web.sql.

COMMENT ON TABLE users IS 'registered users (accounts, customers of the product) and their subscription plan';
COMMENT ON COLUMN users.user_id IS 'user id, account id';
COMMENT ON COLUMN users.email IS 'email address of the user';
COMMENT ON COLUMN users.plan IS 'subscription plan or tier: free, pro or enterprise';
COMMENT ON COLUMN users.signed_up_at IS 'when the user signed up (registration or signup time, account creation)';

COMMENT ON TABLE page_views IS 'page views (visits, hits, traffic): one row per page loaded by a visitor on the website';
COMMENT ON COLUMN page_views.view_id IS 'page view id';
COMMENT ON COLUMN page_views.user_id IS 'the user (visitor) who viewed the page';
COMMENT ON COLUMN page_views.path IS 'page path or URL of the page viewed, e.g. /pricing';
COMMENT ON COLUMN page_views.country IS 'country the visitor came from';
COMMENT ON COLUMN page_views.device IS 'device type: desktop, mobile or tablet';
COMMENT ON COLUMN page_views.browser IS 'web browser: Chrome, Safari, Firefox or Edge';
COMMENT ON COLUMN page_views.referrer IS 'traffic source or referrer: google, direct, newsletter, twitter, github';
COMMENT ON COLUMN page_views.latency_ms IS 'page load time (latency, response time) in milliseconds';
COMMENT ON COLUMN page_views.status_code IS 'HTTP status code of the response, e.g. 200, 404 not found, 500 server error';
COMMENT ON COLUMN page_views.ts IS 'time of the page view';

COMMENT ON TABLE events IS 'product analytics events (actions) users perform: clicks, searches, add to cart, signups, purchases';
COMMENT ON COLUMN events.event_id IS 'event id';
COMMENT ON COLUMN events.user_id IS 'the user who performed the event';
COMMENT ON COLUMN events.event_type IS 'kind of event: page_scroll, click, search, add_to_cart, signup, purchase';
COMMENT ON COLUMN events.revenue IS 'purchase revenue (amount spent) in US dollars; empty for events that are not purchases';
COMMENT ON COLUMN events.ts IS 'time of the event';
