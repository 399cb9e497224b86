"""Framework-free core of the Intune backup service: domain, services, ports, adapters."""
