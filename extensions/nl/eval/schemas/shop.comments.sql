-- Descriptions of the online shop schema, in the words users search with.
-- Loaded after shop.sql.

COMMENT ON TABLE customers IS 'customers (buyers, clients) of the shop';
COMMENT ON COLUMN customers.customer_id IS 'customer id';
COMMENT ON COLUMN customers.name IS 'full name of the customer';
COMMENT ON COLUMN customers.country IS 'country the customer lives in';
COMMENT ON COLUMN customers.segment IS 'customer segment: consumer, small_business or enterprise';

COMMENT ON TABLE orders IS 'orders (purchases, sales) placed by customers';
COMMENT ON COLUMN orders.order_id IS 'order id, order number';
COMMENT ON COLUMN orders.customer_id IS 'the customer who placed the order';
COMMENT ON COLUMN orders.amount IS 'order total (order value, revenue, sales) in euros';
COMMENT ON COLUMN orders.status IS 'order status: pending, shipped, delivered, cancelled or returned';
COMMENT ON COLUMN orders.region IS 'sales region of the order: EU (Europe), US (United States), APAC (Asia Pacific) or LATAM (Latin America)';
COMMENT ON COLUMN orders.created_at IS 'when the order was placed (order date)';

COMMENT ON TABLE payments IS 'payments (transactions) received for orders';
COMMENT ON COLUMN payments.payment_id IS 'payment id';
COMMENT ON COLUMN payments.order_id IS 'the order this payment pays for';
COMMENT ON COLUMN payments.method IS 'payment method: card (credit card), paypal or bank_transfer';
COMMENT ON COLUMN payments.amount IS 'amount paid in euros';
COMMENT ON COLUMN payments.paid_at IS 'when the payment was made (payment date)';
