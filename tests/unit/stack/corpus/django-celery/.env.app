# app settings
DJANGO_SETTINGS_MODULE=shop.settings.prod
SECRET_KEY='s3cr3t$notinterpolated'
ALLOWED_HOSTS="shop.example.com,localhost"
DEBUG=0 # off
