//! Calibrations and past runs, remembered in an embedded database.
