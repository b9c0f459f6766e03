"""Pages of the platform itself (the landing page); each context serves its own pages."""
from django.shortcuts import render


def home(request):
    return render(request, "home.html")
