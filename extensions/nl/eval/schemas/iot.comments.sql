-- Descriptions of the IoT sensor schema, in the words users search with.
-- Loaded after iot.sql.

COMMENT ON TABLE devices IS 'sensor devices installed at our sites';
COMMENT ON COLUMN devices.device_id IS 'device id, sensor id';
COMMENT ON COLUMN devices.name IS 'device name (label), e.g. HAM-IND-01';
COMMENT ON COLUMN devices.site IS 'site (location, city, plant) where the device is installed: Hamburg, Lyon, Austin or Osaka';
COMMENT ON COLUMN devices.kind IS 'kind of sensor: indoor, outdoor or freezer';
COMMENT ON COLUMN devices.model IS 'hardware model of the device: TH-100, TH-200 or FrostGuard';

COMMENT ON TABLE readings IS 'sensor readings (measurements, telemetry) sent by the devices';
COMMENT ON COLUMN readings.device_id IS 'the device that sent the reading';
COMMENT ON COLUMN readings.temperature IS 'temperature in degrees Celsius';
COMMENT ON COLUMN readings.humidity IS 'relative humidity in percent';
COMMENT ON COLUMN readings.battery IS 'battery level of the device in percent';
COMMENT ON COLUMN readings.ts IS 'time of the reading';
