"""The Streamlit review desk."""
