"""What is true of DrayDog itself: the picture-URL grammar, the terminals' time zone
and the camera page's selectors.

The downloader and the replica both read these rules, so they live apart from
either, and importing them loads neither requests, Selenium nor SQLAlchemy.
"""
