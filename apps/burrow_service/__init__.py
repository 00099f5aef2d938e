"""What Burrow's producer and consumer share: settings, broker connection, health, metrics, logs."""
