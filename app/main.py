import streamlit as st

st.set_page_config(page_title="Budgeted Attention Explorer", layout="wide")
st.title("Budgeted Attention Explorer")
st.write("The app is being built; see the README.")
