"""lead_hsr.data"""
