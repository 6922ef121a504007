"""The reporting module: records -> DataFrame -> tables. Imports no framework."""
