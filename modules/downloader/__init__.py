"""Finding, downloading and recording DrayDog's gate-camera pictures."""

from modules.downloader.report import DownloadReport
from modules.downloader.selenium_client import DrayDogDownloader, PictureOutcome
from modules.site.urls import (
    ImageRef,
    InvalidImageURL,
    InvalidName,
    build_image_url,
    parse_image_url,
)

__all__ = [
    "DownloadReport",
    "DrayDogDownloader",
    "ImageRef",
    "InvalidImageURL",
    "InvalidName",
    "PictureOutcome",
    "build_image_url",
    "parse_image_url",
]
