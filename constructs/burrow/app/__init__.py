"""App-layer constructs: namespace, RabbitMQ broker, queue workers."""
