"""lead_hsr.metrics"""
