"""SNN Workbench: convert Keras ANNs to spiking networks and see why they behave differently."""

__version__ = "0.1.0"
